import type { Job } from "../api/jobs";
import { jobTitle } from "../api/jobs";
import { TrustBanner } from "./TrustBanner";

/** The audit under review's trust verdict while another job (a verify run of it) is selected:
 *  the verdict goes with the ranking on the page, not with whichever job is selected. Renders
 *  nothing when the audit itself is selected (its job view shows the banner) or has no verdict. */
export function AuditTrust({ audit, selected }: { audit: Job | null; selected: Job | null }) {
  if (!audit || !selected || selected.id === audit.id) return null;
  const metrics = audit.metrics;
  if (!metrics || metrics.kind !== "audit" || (!metrics.trust && !metrics.mislabelled)) return null;
  return (
    <section className="card" aria-label={`Can the ranking of ${jobTitle(audit)} be trusted?`} data-testid="audit-trust">
      <TrustBanner metrics={metrics} />
    </section>
  );
}
