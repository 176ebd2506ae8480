"""``crossrec serve``: the FastAPI app over ``crossrec.serving``, loading the trained model and
its artifacts through the Kedro catalog (``artifacts.py``), and the web page (``static/``)."""
