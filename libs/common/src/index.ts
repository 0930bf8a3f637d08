export * from './host-port';
export * from './package-root';
export * from './throttled';
export * from './tls-files';
export * from './xds-node-id';
