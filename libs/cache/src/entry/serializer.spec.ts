import { decodeEnvelope, deserializeValue, encodeEnvelope, serializedValueOf, serializeValue } from './serializer.js';

describe('serializer', () => {
  it('keeps Date values, nested and in arrays', () => {
    const value = { at: new Date('2026-01-02T03:04:05.678Z'), list: [new Date(0)], name: 'x' };
    const back = deserializeValue(serializeValue(value)) as typeof value;
    expect(back.at).toBeInstanceOf(Date);
    expect(back.at.toISOString()).toBe('2026-01-02T03:04:05.678Z');
    expect(back.list[0]).toBeInstanceOf(Date);
    expect(back).toEqual(value);
  });

  it('drops __proto__ and constructor.prototype so cached JSON cannot pollute prototypes', () => {
    const payload = '{"a":1,"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}';
    const back = deserializeValue(payload) as Record<string, unknown>;
    expect(back.a).toBe(1);
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.assign({}, back).polluted).toBeUndefined();
    expect(Object.keys(back)).toEqual(['a']);
    const escaped = deserializeValue('{"b":2,"\\u005f_proto__":{"polluted":true}}') as Record<string, unknown>;
    expect(Object.keys(escaped)).toEqual(['b']);
    expect(Object.assign({}, escaped).polluted).toBeUndefined();
  });

  it('round-trips an envelope and refuses corrupt or foreign values', () => {
    const text = encodeEnvelope({ c: 1, f: 2, h: 3, d: 4, t: ['users:list'] }, serializeValue({ id: 7 }));
    expect(decodeEnvelope(text)).toEqual({ c: 1, f: 2, h: 3, d: 4, t: ['users:list'], v: { id: 7 } });
    expect(decodeEnvelope('{"c":1,"f":2')).toBeUndefined();
    expect(decodeEnvelope('"just a string"')).toBeUndefined();
    expect(decodeEnvelope('{"value":1}')).toBeUndefined();
    expect(decodeEnvelope('{"v":1,"c":"yesterday","f":2,"h":3,"d":4}')).toBeUndefined();
  });

  it("revives the Dates of an envelope's value (top level, nested, in arrays) and reads foreign text too deep to walk as unreadable", () => {
    const envelope = (value: unknown) => decodeEnvelope(encodeEnvelope({ c: 1, f: 2, h: 3, d: 4 }, serializeValue(value)));
    expect(envelope(new Date(5))?.v).toEqual(new Date(5));
    const nested = envelope({ a: [{ at: new Date(6) }, [new Date(7)]], n: null, s: '{"$date":8}' })?.v as {
      a: [{ at: Date }, [Date]];
      s: string;
    };
    expect(nested.a[0].at).toEqual(new Date(6));
    expect(nested.a[1][0]).toEqual(new Date(7));
    expect(nested.s).toBe('{"$date":8}');
    expect(envelope(null)?.v).toBeNull();
    expect(envelope(3)?.v).toBe(3);
    // The metadata is not walked: a foreign `$date` object there stays as it is.
    expect(decodeEnvelope('{"c":1,"f":2,"h":3,"d":4,"x":{"$date":1},"v":{"at":{"$date":9}}}')).toMatchObject({
      x: { $date: 1 },
      v: { at: new Date(9) },
    });
    const deep = `{"c":1,"f":2,"h":3,"d":4,"v":${'['.repeat(200_000)}{"$date":1}${']'.repeat(200_000)}}`;
    expect(decodeEnvelope(deep)).toBeUndefined();
  });

  it('takes the serialized value back out of an envelope without parsing it', () => {
    const value = serializeValue({ at: new Date(0), tags: [',"v":'] });
    const text = encodeEnvelope({ c: 1, f: 2, h: 3, d: 4, t: ['x,"v":y'] }, value);
    expect(serializedValueOf(text)).toBe(value);
    expect(serializedValueOf('{"v":1,"c":1,"f":2,"h":3,"d":4}')).toBeUndefined();
  });
});
