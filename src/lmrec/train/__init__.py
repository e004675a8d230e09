"""Training infrastructure shared by the PyTorch models: distributed setup and checkpoints.

Nothing here imports torch at module level (``import lmrec.train`` stays cheap).
"""
