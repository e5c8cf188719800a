"""The run store: every run's record, metrics, events and decision surface; the only channel between
a run and its readers.
"""
