import { createServer, type Server, type Socket, connect } from 'node:net';

/**
 * A loopback TCP proxy in front of a service, so that one test can cut its own app off from
 * PostgreSQL or Redis (others keep using the real one): `block()` drops every connection and
 * refuses new ones, `stall()` drops them and then accepts without ever answering (a hanging
 * server), `unblock()` forwards again.
 */
export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private mode: 'forward' | 'block' | 'stall' = 'forward';
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
      if (proxy.mode === 'stall') {
        proxy.sockets.add(client);
        client.on('close', () => proxy?.sockets.delete(client));
        client.on('error', () => undefined);
        return;
      }
      const upstream = connect(targetPort, targetHost);
      for (const socket of [client, upstream]) {
        proxy.sockets.add(socket);
        socket.on('close', () => proxy?.sockets.delete(socket));
        socket.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    proxy = new TcpProxy(server, (server.address() as { port: number }).port);
    return proxy;
  }

  block(): void {
    this.mode = 'block';
    for (const socket of this.sockets) socket.destroy();
  }

  stall(): void {
    this.mode = 'stall';
    for (const socket of this.sockets) socket.destroy();
  }

  unblock(): void {
    // Stalled connections would hang forever: drop them, clients reconnect through the proxy.
    if (this.mode === 'stall') for (const socket of this.sockets) socket.destroy();
    this.mode = 'forward';
  }

  url(base: string): string {
    const url = new URL(base);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.toString();
  }

  async stop(): Promise<void> {
    this.block();
    await new Promise<void>((done) => this.server.close(() => done()));
  }
}
