import { describe, expect, it } from 'vitest';
import { toBullMqConnection, toRedisOptions } from './redis-connection.js';

describe('toBullMqConnection', () => {
  it('keeps every option that has a value, so BullMQ builds the same client ioredis would', () => {
    const options = toRedisOptions('rediss://user:p%40ss@cache.internal:6380/2', 'memoflow.test');
    expect(toBullMqConnection(options)).toEqual({
      connectionName: 'memoflow.test',
      host: 'cache.internal',
      port: 6380,
      username: 'user',
      password: 'p@ss',
      db: 2,
      tls: {},
    });
  });

  it('drops keys set to undefined, which would otherwise replace BullMQ’s own defaults', () => {
    const retryStrategy = (): number => 100;
    const converted = toBullMqConnection({ host: undefined, port: 6379, retryStrategy, password: undefined });
    expect(converted).toEqual({ port: 6379, retryStrategy });
    expect(Object.keys(converted).sort()).toEqual(['port', 'retryStrategy']);
  });
});
