import rfdc from 'rfdc';
const a = rfdc({ proto: false, circles: false });
const b = rfdc({ proto: true, circles: false });
const user = { id: 1, email: 'ada@example.com', name: 'Ada Lovelace', settings: { theme: 'dark' }, version: 3, createdAt: new Date() };
function run(f: (x: unknown) => unknown, label: string) {
  let sink = 0;
  for (let r = 0; r < 5; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < 2_000_000; i++) sink += (f(user) as { id: number }).id;
    const ns = Number(process.hrtime.bigint() - t) / 2_000_000;
    if (r >= 2) console.log(label, ns.toFixed(1), 'ns', sink > 0);
  }
}
for (let k = 0; k < 2; k++) { run(a, 'proto:false'); run(b, 'proto:true'); }
