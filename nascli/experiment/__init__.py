"""Experiment management (torch-free): config, store, manager, training service, trial channel."""
