import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';

export const JSON_BODY_LIMIT = '64kb';

/**
 * What main.ts and the e2e tests both apply, so that tests run the app as it is deployed:
 * a bounded JSON body parser whose failures (413, malformed JSON) answer in JSON.
 * Create the app with `{ bodyParser: false }`.
 */
export function configureHttp(app: NestExpressApplication): void {
  app.useBodyParser('json', { limit: JSON_BODY_LIMIT });
  app.use((error: { status?: number; type?: string; message?: string }, _req: Request, res: Response, next: NextFunction) => {
    if (!error || typeof error.status !== 'number' || error.status < 400 || error.status >= 500) return next(error);
    const tooLarge = error.status === 413;
    res.status(error.status).json({
      statusCode: error.status,
      error: tooLarge ? 'Payload Too Large' : 'Bad Request',
      message: tooLarge ? `request body is larger than ${JSON_BODY_LIMIT}` : 'request body is not valid JSON',
    });
  });
  app.enableShutdownHooks();
}
