/** The names of every gRPC status but OK, in code order (1-16). */
export const GRPC_FAILURE_CODE_NAMES = [
  'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE',
  'DATA_LOSS', 'UNAUTHENTICATED',
] as const;

/** gRPC status code names, indexed by code, as the metrics' `code` label and the config (`UNAVAILABLE`) write them. */
export const GRPC_CODE_NAMES = ['OK', ...GRPC_FAILURE_CODE_NAMES] as const;

export type GrpcCodeName = (typeof GRPC_CODE_NAMES)[number];

/** The numeric code of a status name. */
export function grpcCode(name: GrpcCodeName): number {
  return GRPC_CODE_NAMES.indexOf(name);
}
