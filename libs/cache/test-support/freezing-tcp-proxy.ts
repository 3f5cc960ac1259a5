import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP proxy whose path can go silent without closing anything, as a network partition
 * does: `freeze()` stops forwarding in both directions (connections stay open, new ones are
 * accepted and hang), `thaw()` forwards again, including what was held back. Unlike
 * `TcpProxy.stall()`, no connection is dropped, so only a client that checks its connection
 * (a heartbeat, a timeout) notices.
 */
export class FreezingTcpProxy {
  private readonly sockets = new Set<Socket>();
  private frozen = false;
  /** what the frozen path holds back, in order: bytes to write, closes to pass on */
  private held: (() => void)[] = [];
  /** connections accepted so far (connect attempts that reached the proxy) */
  accepted = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<FreezingTcpProxy> {
    // Connections arrive only once the port is known, after `proxy` is set below.
    // eslint-disable-next-line prefer-const
    let proxy: FreezingTcpProxy | undefined;
    const server = createServer((client) => {
      if (!proxy) {
        client.destroy();
        return;
      }
      proxy.accepted++;
      const upstream = connect(targetPort, targetHost);
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ]) {
        proxy.sockets.add(from);
        from.on('error', () => undefined);
        from.on('data', (chunk: Buffer) => proxy?.pass(() => to.write(chunk)));
        from.on('close', () => {
          proxy?.sockets.delete(from);
          proxy?.pass(() => to.destroy());
        });
      }
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    proxy = new FreezingTcpProxy(server, (server.address() as { port: number }).port);
    return proxy;
  }

  freeze(): void {
    this.frozen = true;
  }

  thaw(): void {
    this.frozen = false;
    const held = this.held;
    this.held = [];
    for (const deliver of held) deliver();
  }

  url(base: string): string {
    const url = new URL(base);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.toString();
  }

  private pass(deliver: () => void): void {
    if (this.frozen) this.held.push(deliver);
    else deliver();
  }

  async stop(): Promise<void> {
    this.held = [];
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((done) => this.server.close(() => done()));
  }
}
