"""The hosted zoo: push, pull, list and compare models on the Hugging Face Hub."""
