"""One blueprint per API family."""
