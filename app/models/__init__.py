"""The models panel beside every tab: the list of loaded models and the model card."""
