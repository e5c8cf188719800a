"""Where runs execute: admission, the executors (the local warm pool of worker processes) and their
workers.
"""
