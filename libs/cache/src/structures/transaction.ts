import type { ChainableCommander } from 'ioredis';

/**
 * Runs a MULTI block and returns each command's reply. ioredis reports a failed command
 * inside the block as an `[error, reply]` pair rather than a rejection; rethrow the first one.
 */
export async function execTransaction(multi: ChainableCommander): Promise<unknown[]> {
  const results = await multi.exec();
  // `null` only happens when a WATCHed key changed; these blocks watch nothing.
  if (!results) throw new Error('Redis transaction was aborted');
  return results.map(([error, reply]) => {
    if (error) throw error;
    return reply;
  });
}
