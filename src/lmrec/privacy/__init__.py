"""Privacy: forgetting users, differential privacy reports, membership inference,
pseudonymous ids and federated training (see docs/privacy.md).

The mechanisms that change how a model is fitted (DP noise, unlearning) live with the
models (:mod:`lmrec.models.dp`, :class:`~lmrec.models.capabilities.UnlearningModel`);
this package holds what acts on fitted models and data around them. Nothing heavy is
imported here.
"""

from __future__ import annotations

from lmrec.privacy.forget import ForgetReport, forget_users, without_users

__all__ = ["ForgetReport", "forget_users", "without_users"]
