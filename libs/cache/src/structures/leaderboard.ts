import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from '../layers/redis-client.js';
import { checkMember, execTransaction, invalidInput, positiveMs, redisCall } from './structure-calls.js';

export interface RankedMember {
  member: string;
  score: number;
  /** 1 = the highest score. */
  rank: number;
}

export interface LeaderboardOptions {
  /** When set, every write moves the board's expiry to this many ms from now, so idle boards go away. */
  ttlMs?: number;
}

/**
 * A leaderboard on one Redis sorted set: higher score = better rank.
 *
 * Ties: members with equal scores are ordered the way ZREVRANGE orders them, by member in
 * reverse byte order, so ranks stay distinct (1, 2, 3, never 1, 1, 3) and stable between calls.
 */
export class Leaderboard {
  private readonly ttlMs?: number;

  constructor(
    private readonly redis: RedisClient,
    /** The full Redis key, prefix included. */
    readonly key: string,
    options: LeaderboardOptions = {},
  ) {
    this.ttlMs = options.ttlMs === undefined ? undefined : positiveMs(options.ttlMs, 'Leaderboard ttlMs');
  }

  /** Sets `member`'s score (replacing any earlier one) and returns its new standing. */
  async add(member: string, score: number): Promise<RankedMember> {
    checkMember(member, 'a leaderboard member');
    checkScore(score, 'score');
    const multi = this.redis.multi().zadd(this.key, score, member);
    return this.standingAfterWrite(multi, member);
  }

  /** Adds `by` (may be negative) to `member`'s score, starting from 0 for a new member. */
  async increment(member: string, by: number): Promise<RankedMember> {
    checkMember(member, 'a leaderboard member');
    checkScore(by, 'by');
    const multi = this.redis.multi().zincrby(this.key, by, member);
    return this.standingAfterWrite(multi, member);
  }

  /** The best `limit` members, best first. An unknown board is an empty list. */
  async top(limit: number): Promise<RankedMember[]> {
    if (!(Number.isSafeInteger(limit) && limit > 0)) {
      throw invalidInput(`limit must be a positive integer; got ${limit}`);
    }
    const flat = await redisCall(() => this.redis.zrange(this.key, 0, limit - 1, 'REV', 'WITHSCORES'));
    const ranked: RankedMember[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      ranked.push({ member: flat[i], score: parseScore(flat[i + 1]), rank: i / 2 + 1 });
    }
    return ranked;
  }

  /** `member`'s standing, or `null` when it is not on the board. */
  async rankOf(member: string): Promise<RankedMember | null> {
    checkMember(member, 'a leaderboard member');
    // One MULTI so that score and rank describe the same moment.
    const [score, rank] = await execTransaction(this.redis.multi().zscore(this.key, member).zrevrank(this.key, member));
    return score === null || rank === null ? null : { member, score: parseScore(score), rank: Number(rank) + 1 };
  }

  /** `true` when `member` was on the board. */
  async remove(member: string): Promise<boolean> {
    checkMember(member, 'a leaderboard member');
    const multi = this.redis.multi().zrem(this.key, member);
    if (this.ttlMs !== undefined) multi.pexpire(this.key, this.ttlMs);
    const [removed] = await execTransaction(multi);
    return removed === 1;
  }

  /** How many members the board holds. */
  async size(): Promise<number> {
    return redisCall(() => this.redis.zcard(this.key));
  }

  /** Appends the TTL refresh and the read-back to a write, all in one MULTI (one round trip, no interleaving). */
  private async standingAfterWrite(multi: ChainableCommander, member: string): Promise<RankedMember> {
    if (this.ttlMs !== undefined) multi.pexpire(this.key, this.ttlMs);
    multi.zscore(this.key, member).zrevrank(this.key, member);
    const replies = await execTransaction(multi);
    const [score, rank] = replies.slice(-2);
    return { member, score: parseScore(score), rank: Number(rank) + 1 };
  }
}

function checkScore(value: number, name: string): void {
  // Redis would accept "inf", but JSON cannot carry it back: keep every score a finite number.
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw invalidInput(`${name} must be a finite number; got ${String(value)}`);
  }
}

/** Redis writes an infinite score (reachable by incrementing past the double range) as "inf". */
function parseScore(reply: unknown): number {
  const text = String(reply);
  if (text === 'inf' || text === '+inf') return Infinity;
  if (text === '-inf') return -Infinity;
  return Number(text);
}
