// The scenario registry: bench/run.js runs these in this order. A scenario is
// a module whose default export is
//   { name, title, description, run(ctx) }
// where run() records figures through ctx.measure()/ctx.figure() (see
// ../lib/report.js) and closes everything it opened. To add one, write
// bench/scenarios/<name>.js and list it here; filters, progress, the table,
// the JSON and the chart come with it.
import inprocess from './inprocess.js';
import scale from './scale.js';
import micro from './micro.js';
import device from './device.js';
import gateway from './gateway.js';
import flood from './flood.js';
import topology from './topology.js';
import forwards from './forwards.js';
import loss from './loss.js';

export const scenarios = [inprocess, scale, micro, device, gateway, flood, topology, forwards, loss];
