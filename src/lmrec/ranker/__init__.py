"""Fine-tuned LM ranking: prompt building, a cross-encoder ranker, retrieve-then-rerank.

Nothing heavy is imported here; torch, transformers and peft load when a ranker is
built (``pip install 'lmrec[lm]'``).
"""
