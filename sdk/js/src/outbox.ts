export type ReceiptEvent = 'displayed' | 'opened' | 'dismissed'
export const RECEIPT_EVENTS: readonly ReceiptEvent[] = ['displayed', 'opened', 'dismissed']

export interface Receipt {
  /** the message's id */
  id: string
  event: ReceiptEvent
}

/** The most receipts kept while offline: the oldest go first beyond it. */
const OUTBOX_LIMIT = 1_000

/**
 * Receipts the server has not acknowledged yet, in the order they were made. They are kept in
 * storage, so receipts made offline (or just before the app was closed) are sent on the next
 * connection; a receipt leaves only when its PUBACK says the server recorded it.
 */
export class Outbox {
  private items: Receipt[] = []

  add (receipt: Receipt): boolean {
    if (this.items.some(r => sameReceipt(r, receipt))) return false
    this.items.push({ id: receipt.id, event: receipt.event })
    if (this.items.length > OUTBOX_LIMIT) this.items.splice(0, this.items.length - OUTBOX_LIMIT)
    return true
  }

  remove (receipt: Receipt): void {
    this.items = this.items.filter(r => !sameReceipt(r, receipt))
  }

  list (): readonly Receipt[] {
    return this.items
  }

  toJSON (): Receipt[] {
    return this.items
  }

  restore (stored: unknown): void {
    if (!Array.isArray(stored)) return
    for (const r of stored) {
      if (typeof r?.id === 'string' && RECEIPT_EVENTS.includes(r?.event)) this.add(r as Receipt)
    }
  }
}

export const sameReceipt = (a: Receipt, b: Receipt): boolean => a.id === b.id && a.event === b.event
