"""Assets: the store and its reference counts, file type detection, storage, serving files, and the
clean-up behind a forced delete.
"""
