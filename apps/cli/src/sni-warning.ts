/**
 * grpc-js sets the TLS server name (SNI) to the admin's host even when that host is an IP
 * address, which node reports once per process as DEP0123 ("Setting the TLS ServerName to an IP
 * address is not permitted by RFC 6066"). The warning is about the SNI extension only: the
 * admin's certificate is still verified against the IP (its subjectAltName), and a name to
 * verify can be given with --admin-server-name. A balancer that reaches its admin by IP address,
 * as the README's examples do, would print it at every start: that one warning is dropped.
 */
export function dropIpSniWarning(): void {
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    const code = typeof rest[0] === 'object' && rest[0] !== null ? (rest[0] as { code?: unknown }).code : rest[1];
    if (code === 'DEP0123') return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}
