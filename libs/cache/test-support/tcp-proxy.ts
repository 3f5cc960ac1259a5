import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP proxy in front of a service, so that one test can cut its own app off from
 * PostgreSQL or Redis (others keep using the real one):
 * - `block()` drops every connection and refuses new ones (a server that is down);
 * - `stall()` drops them, then accepts new ones without ever answering (a hanging server);
 * - `freeze()` stops forwarding in both directions without closing anything (a network path gone
 *   silent: connections stay open, new ones are accepted and hang), so only a client that checks
 *   its connection (a heartbeat, a timeout) notices;
 * - `unblock()` / `thaw()` forward again (stalled connections are dropped, frozen bytes delivered).
 */
export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private mode: 'forward' | 'block' | 'stall' | 'freeze' = 'forward';
  /** what the frozen path holds back, in order: bytes to write, closes to pass on */
  private held: (() => void)[] = [];
  /** connections accepted so far (connect attempts that reached the proxy) */
  accepted = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    // Connections arrive only once the port is known, after `proxy` is set below.
    // eslint-disable-next-line prefer-const
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => {
      if (!proxy || proxy.mode === 'block') {
        client.destroy();
        return;
      }
      proxy.accepted++;
      proxy.track(client);
      if (proxy.mode === 'stall') return;
      const upstream = connect(targetPort, targetHost);
      proxy.track(upstream);
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ]) {
        from.on('data', (chunk: Buffer) => proxy?.pass(() => to.write(chunk)));
        from.on('close', () => proxy?.pass(() => to.destroy()));
      }
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    proxy = new TcpProxy(server, (server.address() as { port: number }).port);
    return proxy;
  }

  block(): void {
    this.mode = 'block';
    this.dropAll();
  }

  stall(): void {
    this.mode = 'stall';
    this.dropAll();
  }

  freeze(): void {
    this.mode = 'freeze';
  }

  unblock(): void {
    // Stalled connections would hang forever: drop them, clients reconnect through the proxy.
    if (this.mode === 'stall') this.dropAll();
    this.mode = 'forward';
    const held = this.held;
    this.held = [];
    for (const deliver of held) deliver();
  }

  thaw(): void {
    this.unblock();
  }

  url(base: string): string {
    const url = new URL(base);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.toString();
  }

  async stop(): Promise<void> {
    this.mode = 'block';
    this.dropAll();
    await new Promise<void>((done) => this.server.close(() => done()));
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => this.sockets.delete(socket));
  }

  private pass(deliver: () => void): void {
    if (this.mode === 'freeze') this.held.push(deliver);
    else deliver();
  }

  private dropAll(): void {
    this.held = [];
    for (const socket of this.sockets) socket.destroy();
  }
}
