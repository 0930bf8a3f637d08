import { teardown } from './temp-root.mjs';
export default teardown;
