export * from './host-port';
