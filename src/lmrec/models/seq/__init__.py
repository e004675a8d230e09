"""Next-item models over each user's time-ordered history: SASRec and GRU4Rec.

- :mod:`~lmrec.models.seq.config` -- the shared hyperparameters (item representation,
  loss, training, precision);
- :mod:`~lmrec.models.seq.base` -- :class:`~lmrec.models.seq.base.SequentialRecommender`,
  the protocol side (fit, score, sessions, save/load);
- :mod:`~lmrec.models.seq.trainer` -- the training loop (losses, mixed precision,
  early stopping, checkpoints, torch.distributed);
- :mod:`~lmrec.models.seq.nets` -- the torch modules (item tower with the frozen LM
  adaptor, causal self-attention, GRU);
- :mod:`~lmrec.models.seq.sasrec`, :mod:`~lmrec.models.seq.gru4rec` -- the models.

Nothing here imports torch at module level except ``nets``, which only the training and
session-scoring code imports, inside functions.
"""
