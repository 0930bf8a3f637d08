/**
 * Backend addresses exactly as the balancer will dial them: `host:port`, where host is a DNS
 * name, a dotted-quad IPv4 address or a bracketed IPv6 address (no zone), and port is 1-65535.
 * The REST API, the config file loader and the balancer all validate with this one function, so
 * an address the API accepts is one every balancer can connect to (`[1.2.3.4]:80`, `1.2.3.999:80`
 * or `127.1:80` are refused here rather than failing in node's URL parser at the first call).
 */
import { isIPv4, isIPv6 } from 'node:net';

const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** Why `address` is not a dialable host:port, or null when it is. */
export function addressProblem(address: string): string | null {
  const colon = address.lastIndexOf(':');
  if (colon <= 0) return 'must be host:port, e.g. 127.0.0.1:50051';
  const host = address.slice(0, colon);
  const port = address.slice(colon + 1);
  if (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) return 'port must be 1-65535';
  if (host.startsWith('[')) {
    if (!host.endsWith(']') || !isIPv6(host.slice(1, -1))) return 'a bracketed host must be an IPv6 address without a zone, e.g. [::1]:50051';
  } else if (/^[0-9.]+$/.test(host)) {
    if (!isIPv4(host)) return 'an IPv4 address must be four numbers 0-255, e.g. 127.0.0.1';
  } else {
    const labels = host.split('.');
    if (host.length > 253 || !labels.every((l) => LABEL.test(l))) return 'host must be a DNS name (labels of a-z, 0-9 and "-"), an IPv4 address or a bracketed IPv6 address';
    // A name whose last label is a number is read as an IPv4 address by URL parsers (127.1).
    if (/^([0-9]+|0x[0-9a-f]*)$/i.test(labels[labels.length - 1]!)) return 'host must not end in a numeric label (write IPv4 addresses as four numbers)';
  }
  try {
    new URL(`http://${address}`);
  } catch {
    return 'is not an address the balancer can connect to';
  }
  return null;
}
