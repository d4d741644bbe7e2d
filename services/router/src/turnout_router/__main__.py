"""``python -m turnout_router``: run the router in this process (see ``main.serve``)."""

from turnout_router.main import run

run()
