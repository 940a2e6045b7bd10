/** Part of the Modal control-plane STAND-IN (see stand-in.ts): a gRPC status to answer with. */
import type { status } from '@grpc/grpc-js';

export class RpcError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'RpcError';
  }
}
