export * from './schema';
export * from './parse';
export * from './canonical';
export * from './diff';
export * from './address';
export * from './grpc-codes';
export * from './patch';
export * from './validate-steps';
