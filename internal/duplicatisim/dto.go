package duplicatisim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Formatting of .NET values as Duplicati serialises them.

// netLocal formats a local DateTime as System.Text.Json does (offset, up to 7 fraction digits).
func netLocal(t time.Time) string { return t.Format("2006-01-02T15:04:05.9999999-07:00") }

// netUTC formats a UTC DateTime (trailing Z).
func netUTC(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.9999999Z") }

// metaDate is the Metadata date format yyyyMMdd'T'HHmmssK in UTC.
func metaDate(t time.Time) string { return t.UTC().Format("20060102T150405Z") }

// timeSpan formats a duration like .NET TimeSpan.ToString() ("c"): [d.]hh:mm:ss[.fffffff].
func timeSpan(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	ticks := int64(d / 100)
	frac := ticks % 10_000_000
	secs := ticks / 10_000_000
	days, h, m, sec := secs/86400, (secs/3600)%24, (secs/60)%60, secs%60
	out := fmt.Sprintf("%02d:%02d:%02d", h, m, sec)
	if days > 0 {
		out = strconv.FormatInt(days, 10) + "." + out
	}
	if frac != 0 {
		out += fmt.Sprintf(".%07d", frac)
	}
	return out
}

type errorDTO struct {
	Error string
	Code  int
}

// accessTokenDTO is AccessTokenOutputDto; 2.1.0.x has no RefreshNonce.
type accessTokenDTO struct {
	AccessToken  string
	RefreshNonce *string `json:",omitempty"`
}

type tuple struct {
	Item1 int64
	Item2 *string
}

type scheduleTuple struct {
	Item1 string
	Item2 time.Time
}

type serverStatusDTO struct {
	ActiveTask               *tuple
	ProgramState             string
	SchedulerQueueIds        []tuple
	ProposedSchedule         []scheduleTuple
	HasWarning               bool
	HasError                 bool
	SuggestedStatusIcon      string
	EstimatedPauseEnd        time.Time
	LastEventID              int64
	LastDataUpdateID         int64
	LastNotificationUpdateID int64
	UpdatedVersion           *string
	UpdaterState             string
	UpdateDownloadLink       *string
	UpdateDownloadProgress   float64
	Type                     *string `json:",omitempty"` // absent in 2.1.0.x
}

type taskStartedDTO struct {
	Status string
	ID     int64
}

type taskStateDTO struct {
	Status       string
	ID           int64
	TaskStarted  *string
	TaskFinished *string
	ErrorMessage *string
	Exception    *string
}

// taskStateDTO21 is 2.1.0.x's GetTaskStateDto(Status, ID, ErrorMessage, Exception).
type taskStateDTO21 struct {
	Status       string
	ID           int64
	ErrorMessage *string
	Exception    *string
}

type backupDTO struct {
	ID          string
	Name        string
	Description string
	Tags        []string
	TargetURL   string
	DBPath      string
	Sources     []string
	Settings    []settingDTO
	Filters     []filterDTO
	Metadata    map[string]string
	IsTemporary bool
}

type settingDTO struct {
	Filter, Name, Value string
}

type filterDTO struct {
	Order      int64
	Include    bool
	Expression string
}

type backupListEntry struct {
	Backup   backupDTO
	Schedule *struct{}
}

type backupGetDTO struct {
	Schedule     *struct{}
	Backup       backupDTO
	DisplayNames map[string]string
}

type progressDTO struct {
	BackupID                   string
	TaskID                     int64
	BackendAction              string
	BackendPath                *string
	BackendFileSize            int64
	BackendFileProgress        int64
	BackendSpeed               int64
	BackendIsBlocking          bool
	CurrentFilename            *string
	CurrentFilesize            int64
	CurrentFileoffset          int64
	CurrentFilecomplete        bool
	Phase                      string
	OverallProgress            float64
	ProcessedFileCount         int64
	ProcessedFileSize          int64
	TotalFileCount             int64
	TotalFileSize              int64
	StillCounting              bool
	ActiveTransfers            []struct{}
	RemoteSyncDestinationIndex int64
	RemoteSyncDestinationCount int64
	EstimatedTimeToCompletion  string
}

// resultMessage is the subset of the serialised operation result kept in LogData.Message.
type resultMessage struct {
	DeletedFiles         int64
	DeletedFolders       int64
	ModifiedFiles        int64
	ExaminedFiles        int64
	OpenedFiles          int64
	AddedFiles           int64
	SizeOfModifiedFiles  int64
	SizeOfAddedFiles     int64
	SizeOfExaminedFiles  int64
	SizeOfOpenedFiles    int64
	NotProcessedFiles    int64
	AddedFolders         int64
	TooLargeFiles        int64
	FilesWithError       int64
	PartialBackup        bool
	Dryrun               bool
	MainOperation        string
	ParsedResult         string
	Interrupted          bool
	Version              string
	EndTime              string
	BeginTime            string
	Duration             string
	MessagesActualLength int64
	WarningsActualLength int64
	ErrorsActualLength   int64
	Messages             []string
	Warnings             []string
	Errors               []string
}

func (s *Sim) writeLogLocked(t *task, parsed string, interrupted, partial bool, now time.Time) {
	mainOp := "Backup"
	if t.op != "Backup" {
		mainOp = "Test"
	}
	stamp := now.UTC().Format("2006-01-02 15:04:05 -07")
	m := resultMessage{
		MainOperation: mainOp,
		ParsedResult:  parsed,
		Interrupted:   interrupted,
		PartialBackup: partial && mainOp == "Backup",
		Version:       s.prof.Build,
		BeginTime:     netUTC(t.started),
		EndTime:       netUTC(now),
		Duration:      timeSpan(now.Sub(t.started)),
		Messages:      []string{stamp + " - [Information-Duplicati.Library.Main.Controller-StartingOperation]: The operation " + mainOp + " has started"},
		Warnings:      []string{},
		Errors:        []string{},
	}
	if mainOp == "Backup" {
		m.ExaminedFiles, m.OpenedFiles, m.AddedFiles = 10, 2, 2
		m.SizeOfExaminedFiles, m.SizeOfOpenedFiles, m.SizeOfAddedFiles = 10240, 2048, 2048
	}
	r := t.rd
	if r != nil && mainOp == "Backup" && len(r.Sources) > 0 {
		// The statistics of what was read.
		m.ExaminedFiles, m.OpenedFiles, m.AddedFiles = 0, 0, 0
		m.SizeOfExaminedFiles, m.SizeOfOpenedFiles, m.SizeOfAddedFiles = 0, 0, 0
		for _, e := range r.Entries {
			if e.Kind == "file" {
				m.ExaminedFiles++
				m.OpenedFiles++
				m.SizeOfExaminedFiles += e.Size
				m.SizeOfOpenedFiles += e.Size
			}
		}
	}
	// The configured outcome's canned entries (a run that did not end normally has none).
	if partial && mainOp == "Backup" {
		m.Warnings = append(m.Warnings, stamp+" - [Warning-Duplicati.Library.Main.Operation.BackupHandler-CancellationRequested]: Cancellation was requested by user.")
	}
	switch {
	case parsed == "Fatal":
		msg := fatalMsg
		switch {
		case interrupted:
			msg = canceledMsg
		case r != nil && r.fatal != "":
			msg = r.fatal
		}
		m.Errors = append(m.Errors, stamp+" - [Error-Duplicati.Library.Main.Controller-FailedOperation]: The operation "+mainOp+" has failed with error: "+msg)
	case !interrupted && t.result == "Warning":
		m.Warnings = append(m.Warnings, stamp+" - [Warning-Duplicati.Library.Main.Operation.Backup.FileEnumerationProcess-FileAccessError]: Error reported while accessing file: /source/locked.db")
	case !interrupted && t.result == "Error":
		m.FilesWithError = 1
		m.Errors = append(m.Errors, stamp+" - [Error-Duplicati.Library.Main.Operation.Backup.FileBlockProcessor.FileEntry-PathProcessingFailed]: Failed to process path: /source/broken")
	}
	if r != nil && parsed != "Fatal" {
		for _, w := range r.Warnings {
			m.Warnings = append(m.Warnings, stamp+" - "+w)
		}
		for _, e := range r.Errors {
			m.Errors = append(m.Errors, stamp+" - "+e)
		}
		m.FilesWithError += int64(len(r.Errors))
	}
	m.MessagesActualLength = int64(len(m.Messages))
	m.WarningsActualLength = int64(len(m.Warnings))
	m.ErrorsActualLength = int64(len(m.Errors))
	b, _ := json.Marshal(m)
	s.nextLog++
	s.nextOp++
	s.logs[t.backupID] = append(s.logs[t.backupID], logRow{
		ID: s.nextLog, OperationID: s.nextOp, Timestamp: now.Unix(), Type: "Result", Message: string(b),
	})
	s.lastDataID++
}

// writeMetaLocked updates backup metadata as Runner.cs does: a run that threw writes only
// LastErrorDate/LastErrorMessage (UpdateMetadataError); a Sync job writes LastSync*; an
// interrupted backup writes nothing else; a finished one (even with warnings or errors)
// writes LastBackup* and the statistics.
func (s *Sim) writeMetaLocked(t *task, threw bool, errMsg string, interrupted bool, now time.Time) {
	m := s.meta[t.backupID]
	if m == nil {
		m = map[string]string{}
		s.meta[t.backupID] = m
	}
	if threw {
		m["LastErrorDate"] = metaDate(now)
		m["LastErrorMessage"] = errMsg
		return
	}
	if t.sync && s.prof.SyncJobs {
		m["LastSyncDuration"] = timeSpan(now.Sub(t.started))
		m["LastSyncStarted"] = metaDate(t.started)
		m["LastSyncFinished"] = metaDate(now)
		return
	}
	if interrupted {
		return
	}
	s.versions[t.backupID]++
	size, count := int64(10240), int64(10)
	if r := t.rd; r != nil && len(r.Sources) > 0 {
		size, count = 0, 0
		for _, e := range r.Entries {
			if e.Kind == "file" {
				size += e.Size
				count++
			}
		}
	}
	m["SourceFilesSize"] = strconv.FormatInt(size, 10)
	m["SourceFilesCount"] = strconv.FormatInt(count, 10)
	m["SourceSizeString"] = FormatSize(float64(size))
	m["LastBackupStarted"] = metaDate(t.started)
	m["LastBackupFinished"] = metaDate(now)
	m["LastBackupDuration"] = timeSpan(now.Sub(t.started))
	m["LastBackupDate"] = metaDate(t.started)
	m["BackupListCount"] = strconv.Itoa(s.versions[t.backupID])
	m["TargetFilesSize"] = strconv.Itoa(2048 * s.versions[t.backupID])
	m["TargetFilesCount"] = strconv.Itoa(3 * s.versions[t.backupID])
	m["TargetFilesetsCount"] = strconv.Itoa(s.versions[t.backupID])
	m["TargetSizeString"] = FormatSize(float64(2048 * s.versions[t.backupID]))
}

// FormatSize is Duplicati's Utility.FormatSizeString in the invariant culture
// ("{0:N} KiB": two decimals, thousands separators), e.g. 10240 -> "10.00 KiB".
func FormatSize(size float64) string {
	abs := size
	if abs < 0 {
		abs = -abs
	}
	units := []struct {
		div  float64
		name string
	}{{1 << 40, "TiB"}, {1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}}
	for _, u := range units {
		if abs >= u.div {
			return groupThousands(strconv.FormatFloat(size/u.div, 'f', 2, 64)) + " " + u.name
		}
	}
	return strconv.FormatInt(int64(size), 10) + " bytes"
}

func groupThousands(num string) string {
	sign := ""
	if strings.HasPrefix(num, "-") {
		sign, num = "-", num[1:]
	}
	intPart, frac, _ := strings.Cut(num, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		return sign + b.String() + "." + frac
	}
	return sign + b.String()
}

func (s *Sim) backupDTOLocked(b Backup) backupDTO {
	meta := map[string]string{}
	for k, v := range s.meta[b.ID] {
		meta[k] = v
	}
	return backupDTO{
		ID: b.ID, Name: b.Name, Description: "",
		Tags:      []string{},
		TargetURL: "file:///backups/" + b.Name,
		DBPath:    "/data/Duplicati/" + b.ID + ".sqlite",
		Sources:   backupSources(b),
		Settings:  []settingDTO{},
		Filters:   []filterDTO{},
		Metadata:  meta,
	}
}

func (s *Sim) serverStateLocked() serverStatusDTO {
	st := serverStatusDTO{
		ProgramState:             "Running",
		SchedulerQueueIds:        []tuple{},
		ProposedSchedule:         []scheduleTuple{},
		HasWarning:               s.hasWarning,
		HasError:                 s.hasError,
		EstimatedPauseEnd:        s.pauseEnd,
		LastEventID:              s.lastEventID,
		LastDataUpdateID:         s.lastDataID,
		LastNotificationUpdateID: s.lastNotifID,
		UpdaterState:             "Waiting",
	}
	if s.prof.StateType {
		typ := "legacystatus"
		st.Type = &typ
	}
	if s.q.Paused {
		st.ProgramState = "Paused"
	}
	hide := s.raceGapID
	s.raceGapID = 0
	if s.active != nil && s.active.id != hide {
		st.ActiveTask = &tuple{Item1: s.active.id, Item2: strOrNil(s.active.backupID)}
	}
	for _, t := range s.queue {
		if t.backupID != "" && t.id != hide {
			st.SchedulerQueueIds = append(st.SchedulerQueueIds, tuple{Item1: t.id, Item2: strOrNil(t.backupID)})
		}
	}
	switch {
	case s.q.Paused && s.active != nil:
		st.SuggestedStatusIcon = "ActivePaused"
	case s.q.Paused:
		st.SuggestedStatusIcon = "Paused"
	case s.active != nil:
		st.SuggestedStatusIcon = "Active"
	case s.hasError:
		st.SuggestedStatusIcon = "ReadyError"
	case s.hasWarning:
		st.SuggestedStatusIcon = "ReadyWarning"
	default:
		st.SuggestedStatusIcon = "Ready"
	}
	return st
}

func (s *Sim) progressLocked(now time.Time) (progressDTO, bool) {
	p := s.prog
	if p == nil {
		return progressDTO{}, false
	}
	d := progressDTO{
		BackupID: p.t.backupID, TaskID: p.t.id,
		BackendAction: "Put", TotalFileCount: 10, TotalFileSize: 10240,
		ActiveTransfers: []struct{}{}, EstimatedTimeToCompletion: "00:00:00",
	}
	if p.finished {
		d.Phase, d.OverallProgress = p.phase, 1
		d.ProcessedFileCount, d.ProcessedFileSize = 10, 10240
		return d, true
	}
	frac := 0.0
	if p.t.duration > 0 {
		frac = float64(now.Sub(p.t.started)) / float64(p.t.duration)
	}
	frac = min(max(frac, 0), 0.99)
	d.OverallProgress = frac
	d.ProcessedFileCount = int64(frac * 10)
	d.ProcessedFileSize = int64(frac * 10240)
	d.EstimatedTimeToCompletion = timeSpan(time.Duration(float64(p.t.duration) * (1 - frac)))
	d.Phase = "Backup_ProcessingFiles"
	if p.t.op != "Backup" {
		d.Phase = "Verify_Running"
	}
	return d, true
}

func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// taskDTOLocked builds GetTaskStateDto as the profile has it; task times are local time.
func (s *Sim) taskDTOLocked(status string, id int64, r *taskResult) any {
	d := taskStateDTO{Status: status, ID: id}
	if r != nil {
		if !r.started.IsZero() {
			v := netLocal(r.started)
			d.TaskStarted = &v
		}
		if !r.finished.IsZero() {
			v := netLocal(r.finished)
			d.TaskFinished = &v
		}
		if r.errMsg != "" {
			d.ErrorMessage, d.Exception = &r.errMsg, &r.exception
		}
	}
	if !s.prof.TaskTimes {
		return taskStateDTO21{Status: d.Status, ID: d.ID, ErrorMessage: d.ErrorMessage, Exception: d.Exception}
	}
	return d
}

// backupSources is the Sources of the backup DTO: the configured ones, else a made-up folder.
func backupSources(b Backup) []string {
	if len(b.Sources) > 0 {
		return append([]string{}, b.Sources...)
	}
	return []string{"/source/" + b.Name + "/"}
}
