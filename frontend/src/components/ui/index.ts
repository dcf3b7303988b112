export { Alert } from "./Alert";
export { Announcer } from "./Announcer";
export { count } from "./count";
export { Dialog } from "./Dialog";
export { EmptyState } from "./EmptyState";
export { formatNumber, formatPercent, formatWithUnit } from "./format";
export { Num } from "./Num";
export { NumberField } from "./NumberField";
export { Table, type Column } from "./Table";
