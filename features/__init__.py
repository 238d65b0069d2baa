"""Point-in-time data: the data contract, validation, features, labels and area profiles."""
