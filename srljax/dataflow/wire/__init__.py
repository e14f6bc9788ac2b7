"""The streams between workers: message layouts, stream protocols, in-process and MPI implementations."""
