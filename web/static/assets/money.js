// Money formatting. Amounts arrive in minor units (amount_minor); the number
// of decimals per currency is ISO 4217's, as order/currency.go holds it, not
// Intl's (ICU rounds some currencies, e.g. HUF and IDR, to cash digits).

const ZERO_DECIMALS = new Set(['BIF', 'CLP', 'DJF', 'GNF', 'ISK', 'JPY', 'KMF', 'KRW', 'PYG', 'RWF', 'UGX', 'VND', 'VUV', 'XAF', 'XOF', 'XPF']);
const THREE_DECIMALS = new Set(['BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND']);

export function minorDigits(currency) {
  if (ZERO_DECIMALS.has(currency)) return 0;
  if (THREE_DECIMALS.has(currency)) return 3;
  return 2;
}

const formatters = new Map();

function formatter(currency, compact) {
  const key = currency + (compact ? '/c' : '');
  let f = formatters.get(key);
  if (!f) {
    const digits = minorDigits(currency);
    try {
      f = new Intl.NumberFormat(undefined, compact
        ? { style: 'currency', currency, notation: 'compact', maximumFractionDigits: 1 }
        : { style: 'currency', currency, minimumFractionDigits: digits, maximumFractionDigits: digits });
    } catch {
      // A code this browser's Intl does not know: plain number plus code.
      const n = new Intl.NumberFormat(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
      f = { format: (v) => `${n.format(v)} ${currency}` };
    }
    formatters.set(key, f);
  }
  return f;
}

// formatMinor renders 1250 EUR as "€12.50". Without a currency the amount
// is shown as minor units, never guessed.
export function formatMinor(minor, currency, { compact = false } = {}) {
  if (typeof minor !== 'number' || !Number.isFinite(minor)) return '–';
  if (!currency) return `${minor.toLocaleString()} (minor units)`;
  return formatter(currency, compact).format(minor / 10 ** minorDigits(currency));
}
