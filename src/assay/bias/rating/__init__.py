"""The rating engine: the bias prompt asked of every rater through the LLM transport.

``task`` (the prompt as a transport task), ``rater`` (one passage, one rater: cache, retries,
one repair, a ratings-table row), ``fanout`` (every passage x rater into the ratings store, with
Ray) and ``scorer`` (one passage online, with availability and the daily budget).
"""
