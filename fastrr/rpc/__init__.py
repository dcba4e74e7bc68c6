"""The RPC plugin: goridge RPC on `rpc.listen` (PHP → server, and the CLI).

Frames as in protocol doc §4: options `[seq, len(method)]`, payload
`method || body`, the body in the codec named by the frame flags; answers echo
seq and method, errors add the ERROR flag and carry the text.
"""

from fastrr.rpc.codec import RpcError
from fastrr.rpc.server import RpcServer
from fastrr.rpc.services import Services

__all__ = ["RpcError", "RpcServer", "Services"]
