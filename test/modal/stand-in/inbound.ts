/**
 * Part of the Modal control-plane STAND-IN (see stand-in.ts): the
 * `inboundCidrAllowlist` of sandboxes.create, which Modal applies to tunnels
 * and connect tokens alike. An empty list allows everyone.
 */
import { BlockList, isIPv4 } from 'node:net';
import { status } from '@grpc/grpc-js';
import { RpcError } from './rpc-error.js';

export type InboundFilter = (remoteAddress: string | undefined) => boolean;

export function inboundFilter(cidrs: readonly string[]): InboundFilter {
  if (cidrs.length === 0) return () => true;
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address, bits] = cidr.split('/');
    const family = isIPv4(address ?? '') ? 'ipv4' : 'ipv6';
    const prefix = bits === undefined ? (family === 'ipv4' ? 32 : 128) : Number(bits);
    try {
      list.addSubnet(address ?? '', prefix, family);
    } catch {
      throw new RpcError(status.INVALID_ARGUMENT, `Invalid CIDR in inbound allowlist: ${cidr}`);
    }
  }
  return (remote) => {
    if (!remote) return false;
    const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(remote)?.[1];
    const address = v4 ?? remote;
    return list.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
  };
}
