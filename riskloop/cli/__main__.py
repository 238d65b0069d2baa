from riskloop.cli import app

app()
