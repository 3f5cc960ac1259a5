import { serializeValue } from '../entry/serializer.js';
import { MemoryLayer } from './memory.layer.js';

const meta = (tags?: string[]) => ({ c: 0, f: Date.now() + 60_000, h: Date.now() + 60_000, d: 0, ...(tags ? { t: tags } : {}) });

describe('MemoryLayer.jsonOf', () => {
  it("keeps a dated value's HTTP JSON, counts it in the entry's size, and keeps the entry tagged", () => {
    const l1 = new MemoryLayer({ maxItems: 10, maxBytes: 1_000_000 });
    const raw = serializeValue({ id: 1, at: new Date('2026-01-02T03:04:05.678Z') });
    l1.set('ns:dated', { meta: meta(['ns:team']), raw }, 60_000);
    const before = l1.bytes;
    const json = l1.jsonOf('ns:dated', l1.get('ns:dated')!);
    expect(json).toBe('{"id":1,"at":"2026-01-02T03:04:05.678Z"}');
    expect(l1.bytes).toBe(before + json.length * 2);
    expect(l1.jsonOf('ns:dated', l1.get('ns:dated')!)).toBe(json); // kept: the same text, no second rewrite
    expect(l1.bytes).toBe(before + json.length * 2);
    expect(l1.deleteTagged(['ns:team'])).toBe(1);
    expect(l1.size).toBe(0);
  });

  it('adds nothing for a value whose stored text is already its JSON', () => {
    const l1 = new MemoryLayer({ maxItems: 10, maxBytes: 1_000_000 });
    const raw = serializeValue({ id: 2, name: 'Ada' });
    l1.set('ns:plain', { meta: meta(), raw }, 60_000);
    const before = l1.bytes;
    expect(l1.jsonOf('ns:plain', l1.get('ns:plain')!)).toBe(raw);
    expect(l1.bytes).toBe(before);
  });
});
