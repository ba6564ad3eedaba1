import type { Store } from '../store/index.ts';
import type { PipelineMetrics } from './metrics.ts';

/** Times persona writes for `personahub_store_write_duration_seconds`, outside the store and the processors. */
export function timedStore(store: Store, metrics: PipelineMetrics): Store {
  return Object.assign(Object.create(store) as Store, {
    async upsertPersona(...args: Parameters<Store['upsertPersona']>) {
      const end = metrics.storeWrite.startTimer();
      try {
        return await store.upsertPersona(...args);
      } finally {
        end();
      }
    },
  });
}
