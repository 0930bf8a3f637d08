import type { Algorithm } from '#config';
import { leastConnPicker } from './least-conn';
import { leastResponseTimePicker } from './least-response-time';
import { p2cPicker } from './p2c';
import type { EndpointLoad, Picker } from './picker';
import { roundRobinPicker } from './round-robin';
import { weightedRoundRobinPicker } from './weighted-round-robin';

export type { EndpointLoad, Picker, Random } from './picker';
export { pickLeastConn } from './least-conn';

export function createPicker<E extends EndpointLoad>(algorithm: Algorithm, endpoints: readonly E[]): Picker<E> {
  switch (algorithm) {
    case 'least_conn':
      return leastConnPicker(endpoints);
    case 'round_robin':
      return roundRobinPicker(endpoints);
    case 'weighted_round_robin':
      return weightedRoundRobinPicker(endpoints);
    case 'least_response_time':
      return leastResponseTimePicker(endpoints);
    case 'p2c':
      return p2cPicker(endpoints);
  }
}
