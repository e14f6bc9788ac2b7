"""Dataflow: streams (MPI and in-process), workers, rank layout and launch.

Importing this package imports neither jax nor mpi4py; the modules that need them import them.
"""
