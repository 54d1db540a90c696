"""python -m gradcheck_cli"""

from .cli import app

app(prog_name="gradcheck")
