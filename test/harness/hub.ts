/**
 * A hub: a network namespace of its own holding one bridge (`br0`), to which nodes are connected by veth pairs
 * created directly inside the two namespaces (`ip link add vhN netns <hub> type veth peer name eth0 netns
 * <node>`). Nothing appears in, or is routed through, the host's network namespace; nodes get no default route,
 * so a node reaches the other nodes of its hub and nothing else (not the host, not the world).
 *
 * The namespace is held by a `sleep infinity` started as `setpriv --pdeathsig KILL -- unshare --net`: it dies
 * with the test process, and the watchdog knows it too.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { HarnessError } from './errors.js';
import { isAlive, killProcess, procStat, runOk, sleep, waitDead } from './proc.js';
import { currentRun, register, unregister } from './watchdog.js';

export interface Hub {
  name: string;
  /** host PID of the process that holds the hub's network namespace */
  pid: number;
  /** the subnet nodes get addresses from, e.g. 10.77.0.0/24 (the same in every hub: hubs never meet) */
  subnet: string;
  /** the next free address with its prefix length, e.g. "10.77.0.11/24" */
  allocateAddress(): string;
  /** Connects a network namespace (a node's host PID) to the bridge as `ifname` with `address` (CIDR). */
  attach(nodePid: number, address: string, ifname?: string): Promise<HubPort>;
  /** Cuts (false) or restores (true) a port's link at the bridge: a network partition of that node. */
  setLinkUp(port: HubPort, up: boolean): Promise<void>;
  stop(): Promise<void>;
}

export interface HubPort {
  /** the veth's name inside the hub */
  hubIfname: string;
  /** the interface name inside the node */
  ifname: string;
  /** the node's address, without prefix length */
  address: string;
}

const HUB_NAME = /^[a-z][a-z0-9-]{0,30}$/;
const liveHubs = new Set<Hub>();

/** Stops every hub this process created. */
export async function stopAllHubs(): Promise<void> {
  await Promise.all([...liveHubs].map((h) => h.stop()));
}

export async function createHub(name: string, opts: { subnetPrefix?: string } = {}): Promise<Hub> {
  if (!HUB_NAME.test(name)) throw new HarnessError('HARNESS_BAD_OPTION', `hub name "${name}" is not [a-z][a-z0-9-]{0,30}`);
  const prefix = opts.subnetPrefix ?? '10.77.0';
  if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(prefix)) {
    throw new HarnessError('HARNESS_BAD_OPTION', `subnetPrefix "${prefix}" is not three octets like 10.77.0`);
  }
  const runInfo = await currentRun();
  const holder = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'unshare', '--net', '--', 'sleep', 'infinity'], {
    detached: true,
    stdio: 'ignore',
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  holder.on('error', () => undefined);
  holder.unref();
  const pid = holder.pid;
  if (pid === undefined) throw new HarnessError('HARNESS_PREREQUISITE', 'cannot start setpriv/unshare for a hub (util-linux)');
  // wait until unshare has exec'd sleep inside the new namespace
  const deadline = Date.now() + 5000;
  for (;;) {
    const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
    if (comm.trim() === 'sleep') break;
    if (!isAlive(pid) || Date.now() > deadline) {
      throw new HarnessError('HARNESS_PREREQUISITE', `the hub "${name}" namespace holder did not start (unshare --net)`);
    }
    await sleep(5);
  }
  const startTime = procStat(pid)?.startTime ?? '0';
  const key = `hub-${name}`;
  await register(runInfo, key, { pid: { pid, startTime } });

  const ipIn = (target: number, batch: string): Promise<unknown> =>
    runOk('nsenter', ['-t', String(target), '-n', 'ip', '-batch', '-'], { input: batch, timeoutMs: 10_000 });

  try {
    await ipIn(pid, 'link set lo up\nlink add br0 type bridge\nlink set br0 up\n');
  } catch (e) {
    killProcess(pid);
    await unregister(runInfo, key, pid);
    throw e;
  }

  let nextHost = 11;
  let nextPort = 0;
  let stopped: Promise<void> | undefined;
  const hub: Hub = {
    name,
    pid,
    subnet: `${prefix}.0/24`,
    allocateAddress() {
      if (nextHost > 254) throw new HarnessError('HARNESS_BAD_OPTION', `hub "${name}" has no free address left`);
      return `${prefix}.${nextHost++}/24`;
    },
    async attach(nodePid, address, ifname = 'eth0') {
      if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(address)) {
        throw new HarnessError('HARNESS_BAD_OPTION', `address "${address}" is not IPv4 CIDR like 10.77.0.11/24`);
      }
      const hubIfname = `vh${nextPort++}`;
      // created directly in both namespaces: never in the host's
      await runOk(
        'ip',
        ['link', 'add', hubIfname, 'netns', String(pid), 'type', 'veth', 'peer', 'name', ifname, 'netns', String(nodePid)],
        { timeoutMs: 10_000 },
      );
      await ipIn(pid, `link set ${hubIfname} master br0\nlink set ${hubIfname} up\n`);
      await ipIn(nodePid, `addr add ${address} dev ${ifname}\nlink set ${ifname} up\n`);
      return { hubIfname, ifname, address: address.slice(0, address.indexOf('/')) };
    },
    async setLinkUp(port, up) {
      await ipIn(pid, `link set ${port.hubIfname} ${up ? 'up' : 'down'}\n`);
    },
    stop() {
      stopped ??= (async () => {
        if (isAlive(pid, startTime)) killProcess(pid);
        await waitDead(pid, 5000, startTime);
        await unregister(runInfo, key, pid);
        liveHubs.delete(hub);
      })();
      return stopped;
    },
  };
  liveHubs.add(hub);
  return hub;
}
