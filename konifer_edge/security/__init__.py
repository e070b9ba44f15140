"""Access control: signed URLs (Konifer's scheme, with key rotation) and scoped API keys.

``sign_url`` signs a URL the way the server checks it; ``access.enforce_access`` is what
the asset routes call; ``docs/security.md`` describes both for operators and clients.
"""

from konifer_edge.security.signing import sign_url

__all__ = ["sign_url"]
