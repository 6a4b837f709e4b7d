from scene2brain.cli import app

app(prog_name="scene2brain")
