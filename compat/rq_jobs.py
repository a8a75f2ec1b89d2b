"""Jobs for the rq compatibility test (compat/test_rq.py): a worker imports them by name."""


def count_words(text: str) -> int:
    return len(text.split())
