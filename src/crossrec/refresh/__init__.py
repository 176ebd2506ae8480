"""Keep learning: fold increments into a trained model (refresh) and replay a timeline."""
