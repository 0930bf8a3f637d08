import { setup } from './temp-root.mjs';
export default setup;
