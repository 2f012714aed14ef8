"""Training: the model, the Trainer + peft LoRA run with its evaluation callback, and the embedded tiny model."""
