"""The synthetic Wales-like world and its truth. Modelling code never imports this package."""
