"""The vocabulary of the zoo: names and choices, errors, where files live, settings, and hosting
(who may do what).
"""
